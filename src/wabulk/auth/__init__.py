"""Users, roles, passwords, login throttling and the first-run setup code."""
