"""Drives Agora's Marathon with the marathon-python client from PyPI, as a
user's script would: create, list, scale, kill (with and without scaling),
delete. The client builds its model objects from every field it receives,
so a field Marathon does not send would fail here."""

import sys
import time

import requests

from marathon import MarathonClient
from marathon.exceptions import NotFoundError
from marathon.models import MarathonApp


def wait(condition, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def running(client, app_id):
    return [t for t in client.list_tasks(app_id) if t.state == "TASK_RUNNING"]


def main(url):
    client = MarathonClient(url)
    created = client.create_app(
        "py-app", MarathonApp(cmd="sleep 1000", cpus=0.1, mem=16, instances=2)
    )
    assert created.id == "/py-app", created.id
    wait(lambda: len(running(client, "/py-app")) == 2, "2 running tasks")

    apps = client.list_apps(embed_tasks=True, embed_counts=True)
    assert [a.id for a in apps] == ["/py-app"], apps
    assert apps[0].tasks_running == 2, apps[0].tasks_running
    app = client.get_app("/py-app", embed_tasks=True)
    assert len(app.tasks) == 2, app.tasks

    client.scale_app("/py-app", instances=3)
    wait(lambda: len(running(client, "/py-app")) == 3, "3 running tasks")
    wait(lambda: not client.list_deployments(), "the scale deployment to end")

    victim = running(client, "/py-app")[0].id
    client.kill_task("/py-app", victim, scale=True)
    wait(lambda: client.get_app("/py-app").instances == 2, "instances to drop to 2")
    wait(lambda: len(running(client, "/py-app")) == 2, "2 running tasks after kill")
    assert victim not in [t.id for t in running(client, "/py-app")]

    replaced = running(client, "/py-app")[0].id
    client.kill_given_tasks([replaced])
    wait(
        lambda: len(running(client, "/py-app")) == 2
        and replaced not in [t.id for t in running(client, "/py-app")],
        "the killed task to be replaced",
    )

    # Health and readiness checks: the client builds healthCheckResults,
    # the counts and the deployments' readinessCheckResults as Marathon
    # sends them. (Posted as JSON: the client's encoder of nested objects
    # fails on Python 3.10 and later, whatever the server.)
    checked = requests.post(
        url + "/v2/apps",
        json={
            "id": "/py-checked",
            "cmd": "exec python3 -m http.server $PORT0",
            "cpus": 0.1,
            "mem": 32,
            "portDefinitions": [{"port": 0, "name": "http"}],
            "healthChecks": [
                {"protocol": "HTTP", "path": "/", "intervalSeconds": 1},
                {"protocol": "MESOS_TCP", "intervalSeconds": 1},
            ],
            "readinessChecks": [
                {"name": "ready", "portName": "http", "path": "/", "intervalSeconds": 2, "timeoutSeconds": 1}
            ],
        },
    )
    assert checked.status_code == 201, checked.text
    # Read while the deployment runs, with its readiness results.
    client.list_deployments()

    def healthy():
        app = client.get_app("/py-checked", embed_tasks=True)
        results = [r for t in app.tasks for r in t.health_check_results]
        return app.tasks_healthy == 1 and len(results) == 2 and all(r.alive for r in results)

    wait(healthy, "the checked app to be healthy")
    wait(lambda: not client.list_deployments(), "the checked app's deployment to end")
    client.delete_app("/py-checked")

    info = client.get_info()
    assert info.name == "marathon", info.name
    assert client.ping().strip() in (b"pong", "pong", b'"pong"'), client.ping()

    client.delete_app("/py-app")

    def gone():
        try:
            client.get_app("/py-app")
            return False
        except NotFoundError:
            return True

    wait(gone, "the app to be deleted")
    print("marathon-python: ok")


if __name__ == "__main__":
    main(sys.argv[1])
