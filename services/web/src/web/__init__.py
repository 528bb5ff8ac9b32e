"""carenet web: the server-rendered web front (Flask), a client of the four gRPC services."""
