"""Durable memory: the schema and its migrations, the card log, feedback, encounter memory, the report's
queries and retention. May import cds_hooks' limits and nothing above.
"""
