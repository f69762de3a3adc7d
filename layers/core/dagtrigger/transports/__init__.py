"""Transports to Airflow: one interface (``AirflowTransport``), chosen per environment."""
