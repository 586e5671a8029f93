"""The web console (``tertib serve``) and console accounts (``tertib users``): see :mod:`console.app`."""
