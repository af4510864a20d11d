"""From findings to CDS Hooks cards: rendering with the knowledge's text, citations and override reasons,
and memory (what an earlier answer holds back). May import storage, fhir models, cds_hooks, knowledge and
domain; never web or pipeline.
"""
