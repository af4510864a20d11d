"""Clinical rules: small pure functions from a PatientRecord (plus the orders being advised on) to Findings.

Each rule module opens with the guideline statement it implements and a one-line When/Then.
Rules never see HTTP, JSON bodies or card prose; card text lives in knowledge/cards.json.
"""
