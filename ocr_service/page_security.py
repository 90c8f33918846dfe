"""The security headers of every HTML page the service serves (console, capture page, public check page).

Each page names only what it loads (its ``script-src``/``style-src``/… directives); what every page
gets is here: nothing by default, never framed, no base URL, no Referer, no type sniffing.
"""

from __future__ import annotations

PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def page_headers(*directives: str) -> dict[str, str]:
    """``Content-Security-Policy`` of ``default-src 'none'`` plus ``directives``, and ``PAGE_HEADERS``."""
    policy = "; ".join(("default-src 'none'", *directives, "frame-ancestors 'none'", "base-uri 'none'"))
    return {"Content-Security-Policy": policy, **PAGE_HEADERS}
