"""Settings: the whole client.yaml schema (client, segmentation, relationships, scenarios, CRM
project, automation, segment maps) and the checks across its sections."""
