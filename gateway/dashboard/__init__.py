"""The operators' web dashboard: a static page served by the gateway and the JSON it reads."""
