"""turbine_client — the Python client of turbined, the Turbine daemon.

    import turbine_client
    with turbine_client.Client("unix:/var/lib/turbine/turbined.sock") as client:
        r = client.call("demo.fib", 30)           # r.value 832040, r.source "executed"
        client.set_inputs({"price": 12})
        results = client.call_many([("demo.fib", 10), ("input.get", "price")])
        for result in client.watch("input.get", "price"):
            print(result.value)                   # 12, then each new value

Values are plain Python (values.py has the table; the CLI's JSON forms work too), results
are Results (errors.py), failures raise TurbineError with the gRPC status code. The
protocol's generated modules are turbine_client.v1.turbine_pb2 and turbine_pb2_grpc.
"""
from turbine_client.client import (DEFAULT_DATA_DIR, DEFAULT_TIMEOUT, Call, Client, Watch,
                                   default_address)
from turbine_client.errors import FunctionError, Result, TurbineError
from turbine_client.values import Ref, to_json

__all__ = ["Call", "Client", "DEFAULT_DATA_DIR", "DEFAULT_TIMEOUT", "FunctionError", "Ref",
           "Result", "TurbineError", "Watch", "default_address", "to_json"]
