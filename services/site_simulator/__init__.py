"""The site simulator: a whole site's physics behind real device protocols, for ``ampmq demo`` and tests."""
