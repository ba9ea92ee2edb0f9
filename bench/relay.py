"""A process that does nothing but pass a message on: the floor of a path through separate processes.

``python -m bench.relay URL IN OUT`` republishes every message on topic IN to topic OUT;
``python -m bench.relay URL IN --ws PORT`` sends every message on topic IN as a websocket frame to whoever
connected on PORT (the last hop of the reaction path: the gateway's frame to a charger).

A bare paho client on its own network thread, no asyncio, no parsing: a chain of these is what the reaction
path's transport costs between four idle processes on this machine, with nothing of ampmq's work in it.
"""

from __future__ import annotations

import argparse
import logging
import threading
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from websockets.sync.server import ServerConnection, serve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("inbound")
    parser.add_argument("outbound", nargs="?")
    parser.add_argument("--ws", type=int)
    args = parser.parse_args()
    if (args.outbound is None) == (args.ws is None):
        parser.error("give an outbound topic or --ws PORT")
    peers: list[ServerConnection] = []

    def forward(client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if args.ws is None:
            client.publish(args.outbound, message.payload, qos=0)
        else:
            for peer in peers:
                peer.send(message.payload.decode())

    def hold(connection: ServerConnection) -> None:
        peers.append(connection)
        for _ in connection:  # the reader never sends; this ends when it disconnects
            pass
        peers.remove(connection)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = forward
    client.on_connect = lambda c, *_: c.subscribe(args.inbound, qos=0)
    url = urlsplit(args.url)
    client.connect(url.hostname or "127.0.0.1", url.port or 1883)
    if args.ws is not None:
        logging.getLogger("websockets").setLevel(logging.CRITICAL)  # the port probe's bare connect is no error
        server = serve(hold, "127.0.0.1", args.ws)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    client.loop_forever()


if __name__ == "__main__":
    main()
