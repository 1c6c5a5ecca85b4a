"""Pure domain: entities, names, actions and errors. No I/O, no framework imports."""
