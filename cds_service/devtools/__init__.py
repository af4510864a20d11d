"""Development tools: the local FHIR server wrapper, the fixtures and the requests built from them,
readiness waits. Used by the command line's dev commands, the console's gallery and the tests; the
service's hook path never imports them.
"""
