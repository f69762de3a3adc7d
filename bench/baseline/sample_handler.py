"""The usual public sample, as teams deploy it today: the reference `make bench` measures against.

A Lambda per S3 event that asks MWAA for a CLI token on every event, builds the `dags trigger`
command by hand and posts it to the web server's CLI endpoint: no queue, no retries, no dedupe,
no history. Kept as close to the sample as an S3 trigger allows; not used by dagtrigger itself.
"""

import ast
import base64
import http.client
import json
import os

import boto3

mwaa_env_name = os.environ.get("MWAA_ENVIRONMENT_NAME", "YOUR_ENVIRONMENT_NAME")
dag_name = os.environ.get("DAG_ID", "YOUR_DAG_NAME")
mwaa_cli_command = "dags trigger"

client = boto3.client("mwaa", endpoint_url=os.environ.get("MWAA_ENDPOINT_URL"))


def lambda_handler(event, context):
    outputs = []
    for record in event.get("Records", []):
        body = json.loads(record["body"]) if "body" in record else record
        detail = body.get("detail", {})
        conf = json.dumps({"bucket": detail["bucket"]["name"], "key": detail["object"]["key"]})
        # get web token
        mwaa_cli_token = client.create_cli_token(Name=mwaa_env_name)
        conn = http.client.HTTPSConnection(mwaa_cli_token["WebServerHostname"])
        payload = mwaa_cli_command + " " + dag_name + " --conf '" + conf + "'"
        headers = {
            "Authorization": "Bearer " + mwaa_cli_token["CliToken"],
            "Content-Type": "text/plain",
        }
        conn.request("POST", "/aws_mwaa/cli", payload, headers)
        res = conn.getresponse()
        data = res.read()
        dict_str = data.decode("UTF-8")
        mydata = ast.literal_eval(dict_str)
        outputs.append(base64.b64decode(mydata["stdout"]).decode())
    return outputs
