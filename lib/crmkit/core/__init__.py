"""Core: what every stage shares — messages in both languages (i18n), paths, problems and errors,
the relationship-type catalogue. Imports nothing else of crmkit."""
