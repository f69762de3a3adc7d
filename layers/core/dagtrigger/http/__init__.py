"""The HTTP API's routes (Powertools Routers), request context and problem+json answers.

They live in the layer, beside the services they call, so the api function's app.py only
assembles them; a Lambda zip of functions/api/ then needs nothing but app.py.
"""
