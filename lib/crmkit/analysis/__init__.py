"""Analysis (workbooks 01-02): context indicators and objective, RFM, segment maps, clustering,
profiles and the customer-base models (value)."""
