#!/usr/bin/python3
"""Modbus TCP server for the Weir modbus source's interoperability test.

Written against Debian's python3-pymodbus 3.0.0 (asyncio server API).
Usage: pymodbus_server.py PORT   (PORT 0 picks a free port)
Prints "ready <port>" on stdout once listening, and exits when stdin closes
(so a crashed test run never leaves it behind).

Register map (zero-based PDU addresses; zero_mode=True so that address 0 in a
request is index 0 of the block, not index 1 as pymodbus defaults to):

holding  0      int16   -1234
holding  1..2   uint32  3000000000, word order CDAB (low word first)
holding  3..4   float32 21.5, ABCD
holding  5..8   float64 -1234.5678, ABCD
holding  10..14 string  "weir-pymb" padded with NUL to 10 bytes
input    0      uint16  4321
coils    0..7   1 0 1 1 0 0 0 1
discrete 0..3   0 1 1 0
"""

import asyncio
import sys

from pymodbus.constants import Endian
from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.payload import BinaryPayloadBuilder
from pymodbus.server import StartAsyncTcpServer


def regs(byteorder, wordorder, add):
    b = BinaryPayloadBuilder(byteorder=byteorder, wordorder=wordorder)
    add(b)
    return b.to_registers()


def holding_registers():
    out = []
    out += regs(Endian.Big, Endian.Big, lambda b: b.add_16bit_int(-1234))
    out += regs(Endian.Big, Endian.Little, lambda b: b.add_32bit_uint(3000000000))
    out += regs(Endian.Big, Endian.Big, lambda b: b.add_32bit_float(21.5))
    out += regs(Endian.Big, Endian.Big, lambda b: b.add_64bit_float(-1234.5678))
    out += [0]  # address 9: unused
    out += regs(Endian.Big, Endian.Big, lambda b: b.add_string(b"weir-pymb\x00"))
    return out


async def main(port):
    store = ModbusSlaveContext(
        di=ModbusSequentialDataBlock(0, [False, True, True, False] + [False] * 12),
        co=ModbusSequentialDataBlock(
            0, [True, False, True, True, False, False, False, True] + [False] * 8
        ),
        hr=ModbusSequentialDataBlock(0, holding_registers() + [0] * 16),
        ir=ModbusSequentialDataBlock(0, [4321] + [0] * 15),
        zero_mode=True,
    )
    context = ModbusServerContext(slaves=store, single=True)
    server = await StartAsyncTcpServer(
        context=context, address=("127.0.0.1", port), defer_start=True
    )
    serve = asyncio.create_task(server.serve_forever())
    await server.serving
    bound = server.server.sockets[0].getsockname()[1]
    print("ready", bound, flush=True)

    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # returns on EOF
    await server.server_close()
    serve.cancel()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
