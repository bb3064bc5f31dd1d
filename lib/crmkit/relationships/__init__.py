"""Relationships (workbooks 03-04): the inventory of relationship types per segment, cost to serve,
the four questions, cost-benefit verdicts and scenarios."""
