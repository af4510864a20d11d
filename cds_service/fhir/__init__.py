"""FHIR access: the client that reads the EHR's server with its token, bounded reads, the fhir.resources
models, shape checks and validation, the mapping of FHIR JSON to facts, selection of the resources a rule
reads, and the assembler with its read cache. May import cds_hooks (the request it serves), rules' knowledge
and domain; never web, pipeline or storage.
"""
