"""Planning (workbook 05): the CRM project's schedule, costs, benefits, returns (finance), readiness
and risks, the component to build first and marketing automation."""
