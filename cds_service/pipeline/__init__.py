"""One hook call and one feedback post, end to end: read the record, run the rules, render the cards,
remember, log. May import every layer below web.
"""
