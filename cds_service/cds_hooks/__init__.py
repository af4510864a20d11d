"""The CDS Hooks 2.0 protocol: services from the knowledge, the hook request model and its parsing,
field limits, and the response model. May import knowledge and domain only.
"""
