"""Trusting CDS clients: JWT verification against the allow-list of issuers and key sets, and replay
protection. May import fhir's bounded reads, storage and what they import.
"""
