"""The HTTP face: the application factory and its routes, the one error handler, the WSGI entry, the
production server's configuration and the command line. May import every layer below it.
"""
