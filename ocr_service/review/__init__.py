"""Manual review: the queue of cases the machine could not decide, the reviewers who clear it, their audit log."""
