"""dagtrigger: start Apache Airflow DAG runs on Amazon MWAA from events."""

__version__ = "0.1.0"
