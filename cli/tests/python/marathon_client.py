"""Drives Agora's Marathon with the marathon-python client from PyPI, as a
user's script would: create, list, scale, kill (with and without scaling),
delete, while its event stream is consumed. The client builds its model
objects from every field it receives, and refuses event types it does not
know, so a field or an event Marathon does not send would fail here."""

import sys
import threading
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


class EventReader(threading.Thread):
    """Consumes `/v2/events` through the client's own models, keeping every
    event, or the exception that stopped it."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.events = []
        self.error = None

    def run(self):
        try:
            for event in self.client.event_stream():
                self.events.append(event)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            self.error = e

    def types(self):
        return {e.event_type for e in self.events}


def main(url):
    client = MarathonClient(url)
    reader = EventReader(MarathonClient(url))
    reader.start()
    wait(lambda: "event_stream_attached" in reader.types() or reader.error, "the event stream")
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

    # Every event of the deployments, scales and kills above was parsed
    # into the client's models: none it does not know, no field it refuses.
    wanted = {
        "api_post_event",
        "deployment_info",
        "deployment_step_success",
        "deployment_success",
        "group_change_success",
        "status_update_event",
        "instance_changed_event",
    }
    wait(lambda: wanted <= reader.types() or reader.error, "every kind of event")
    assert reader.error is None, repr(reader.error)
    info = next(e for e in reader.events if e.event_type == "deployment_info")
    assert info.plan.target.id == "/", info.plan.target.id
    assert info.plan.steps and info.plan.steps[0].actions, info.plan.steps
    update = next(e for e in reader.events if e.event_type == "status_update_event")
    assert update.task_status.startswith("TASK_"), update.task_status
    print("marathon-python: ok (%d events)" % len(reader.events))


if __name__ == "__main__":
    main(sys.argv[1])
