"""The service's own vocabulary, pure and dependency-free: facts about a patient, findings of the rules,
the clock, and text matching. Imports nothing of the service above it.
"""
