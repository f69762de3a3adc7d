"""The demo scenario: drop files in S3, watch real Airflow runs start and finish."""
