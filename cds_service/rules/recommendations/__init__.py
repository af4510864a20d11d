"""One module per guideline statement group: small pure functions from a PatientRecord (plus the
orders being advised on) to Findings. May import rules' catalog, knowledge and domain.
"""
