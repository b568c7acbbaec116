# Watches org.freedesktop.Notifications.Notify calls on the bus at
# DBUS_SESSION_BUS_ADDRESS and prints each as one JSON line on stdout.
# Uses the D-Bus monitoring interface, so it sees the calls whether or not a
# notification server is present. Prints {"ready": true} once monitoring.
import json
import sys

import dbus
import dbus.bus
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])
RULE = "type='method_call',interface='org.freedesktop.Notifications',member='Notify'"


def on_message(_bus, msg):
    if msg.get_member() != "Notify":
        return
    args = msg.get_args_list()
    hints = args[6] if len(args) > 6 else {}
    urgency = hints.get("urgency")
    print(json.dumps({
        "app_name": str(args[0]),
        "summary": str(args[3]),
        "body": str(args[4]),
        "actions": [str(a) for a in args[5]],
        "urgency": int(urgency) if urgency is not None else None,
    }), flush=True)


bus.add_message_filter(on_message)
bus.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus",
                  "org.freedesktop.DBus.Monitoring", "BecomeMonitor", "asu", ([RULE], 0))
print(json.dumps({"ready": True}), flush=True)
GLib.MainLoop().run()
