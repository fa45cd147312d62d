"""Runtime shared by every service of the mesh: config, errors, auth, server factory, storage."""
