"""The declaration module (申报): exam applications that consume a verified identity.

Two kinds share one state machine: the TCM expertise qualification assessment
(``tcm_expertise``) and the physician qualification exam probation (``physician_probation``).
"""
