"""An emulator of Amazon MWAA as boto3 and the MWAA web server's /aws_mwaa/cli see it.

Nothing else emulates MWAA (moto and LocalStack's community edition have no MWAA), so the local
stack and the tests use this one, in front of real Apache Airflow.
"""

from devstack.mwaa_emulator.backend import AirflowBackend, CliOutput, CliTimeout, run_airflow_cli
from devstack.mwaa_emulator.emulator import MwaaEmulator
from devstack.mwaa_emulator.faults import FaultInjector, FaultSpec

__all__ = [
    "AirflowBackend",
    "CliOutput",
    "CliTimeout",
    "FaultInjector",
    "FaultSpec",
    "MwaaEmulator",
    "run_airflow_cli",
]
