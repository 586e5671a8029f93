"""One router per console area; :func:`console.app.create_app` includes them all."""
