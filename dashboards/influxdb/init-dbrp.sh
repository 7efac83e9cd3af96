#!/bin/bash
# Maps an InfluxQL database/retention policy onto the hub's bucket (a DBRP mapping), which InfluxDB 2
# needs before it answers the InfluxQL queries of the Grafana dashboards (dashboards/provisioning).
#
# The influxdb:2 image runs the executable *.sh files in /docker-entrypoint-initdb.d/ once, right after it
# set up an empty data volume from DOCKER_INFLUXDB_INIT_*: the influx CLI is then configured with the
# admin token and the org, and DOCKER_INFLUXDB_INIT_BUCKET_ID holds the new bucket's id.
#   INFLUXDB_DATABASE          the InfluxQL database name (default: the bucket's name), as Grafana uses it
#   INFLUXDB_RETENTION_POLICY  the InfluxQL retention policy name (default: autogen)
set -euo pipefail

database="${INFLUXDB_DATABASE:-${DOCKER_INFLUXDB_INIT_BUCKET}}"
retention_policy="${INFLUXDB_RETENTION_POLICY:-autogen}"

influx v1 dbrp create \
    --org "${DOCKER_INFLUXDB_INIT_ORG}" \
    --bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
    --db "${database}" \
    --rp "${retention_policy}" \
    --default
echo "InfluxQL database ${database}/${retention_policy} maps to bucket ${DOCKER_INFLUXDB_INIT_BUCKET}"
