"""The clinical knowledge as data: the JSON files and value sets beside this module, the one loader,
the typed model built from them, and terminology. May import domain only.
"""
