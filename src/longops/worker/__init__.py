"""Running task code: registry, dispatcher, executor, run context, sessions."""
