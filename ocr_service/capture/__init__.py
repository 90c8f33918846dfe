"""The hosted capture page: short-lived capture links and the applicant's camera screen (issue 14)."""
