"""The CRM strategy workshop: a pack of cases, exercises and answers, and its grading."""
