// A small node-opcua server for Weir's OPC UA source interop tests.
//
//   node server.js --port 4841 --pki ./pki
//
// Serves, under Objects/Peer (namespace urn:weir:peer, index 2 here; the
// tests address it as nsu=urn:weir:peer;s=peer.…):
//   s=peer.double   Double 3.5            s=peer.int32    Int32 -42
//   s=peer.uint16   UInt16 65000          s=peer.bool     Boolean true
//   s=peer.string   String "node-opcua"   s=peer.doubles  Double[] [1.5, 2.5]
//   s=peer.int32s   Int32[] [1, -2, 3]
//   s=peer.counter  UInt32, +1 every 100 ms
//   s=peer.analog   AnalogItem Double, EURange 0..200, +1 every 100 ms (wraps at 200)
// With --bench-items N (and --change-ms M, default 103.125), also serves the
// items of `weir bench -source opcua`: Double variables s=bench.00000 … under
// Objects/Bench, every one changed every M ms with a fresh source
// timestamp (weir bench -opcua-endpoint … -opcua-namespace nsu=urn:weir:peer).
// Endpoints: None/None and Basic256Sha256/SignAndEncrypt; anonymous and the
// user weir/secret. Client certificates are accepted automatically.
// Prints "ready <port>" on stdout when listening; exits on SIGTERM, SIGINT
// or when stdin closes.
"use strict";
const path = require("path");
const {
  OPCUAServer, OPCUACertificateManager, Variant, DataType, StatusCodes,
  MessageSecurityMode, SecurityPolicy, nodesets,
} = require("node-opcua");

function arg(name, def) {
  const i = process.argv.indexOf("--" + name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

async function main() {
  const port = parseInt(arg("port", "4841"), 10);
  const pki = path.resolve(arg("pki", path.join(__dirname, "pki")));
  const serverCertificateManager = new OPCUACertificateManager({
    automaticallyAcceptUnknownCertificate: true,
    rootFolder: path.join(pki, "server"),
  });
  await serverCertificateManager.initialize();
  const userCertificateManager = new OPCUACertificateManager({
    automaticallyAcceptUnknownCertificate: true,
    rootFolder: path.join(pki, "user"),
  });
  await userCertificateManager.initialize();

  const server = new OPCUAServer({
    port,
    hostname: "127.0.0.1",
    nodeset_filename: [nodesets.standard],
    serverCertificateManager,
    userCertificateManager,
    securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256],
    securityModes: [MessageSecurityMode.None, MessageSecurityMode.SignAndEncrypt],
    allowAnonymous: true,
    userManager: { isValidUser: (user, password) => user === "weir" && password === "secret" },
    buildInfo: { productName: "weir-peer", buildNumber: "1", buildDate: new Date(0) },
    serverInfo: { applicationUri: "urn:weir:peer:nodeopcua" },
  });
  await server.initialize();

  const addressSpace = server.engine.addressSpace;
  const ns = addressSpace.registerNamespace("urn:weir:peer");
  const peer = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: "Peer", nodeId: "s=peer" });
  const started = new Date();
  const statics = [
    ["double", "Double", DataType.Double, 3.5],
    ["int32", "Int32", DataType.Int32, -42],
    ["uint16", "UInt16", DataType.UInt16, 65000],
    ["bool", "Boolean", DataType.Boolean, true],
    ["string", "String", DataType.String, "node-opcua"],
    ["doubles", "Double", DataType.Double, [1.5, 2.5], 1],
    ["int32s", "Int32", DataType.Int32, [1, -2, 3], 1],
  ];
  for (const [name, typ, dt, value, rank] of statics) {
    const v = ns.addVariable({
      componentOf: peer, browseName: name, nodeId: "s=peer." + name, dataType: typ,
      valueRank: rank === 1 ? 1 : -1, arrayDimensions: rank === 1 ? [value.length] : null,
    });
    const variant = rank === 1
      ? new Variant({ dataType: dt, arrayType: 1 /* VariantArrayType.Array */, value })
      : new Variant({ dataType: dt, value });
    v.setValueFromSource(variant, StatusCodes.Good, started);
  }
  const counter = ns.addVariable({ componentOf: peer, browseName: "counter", nodeId: "s=peer.counter", dataType: "UInt32" });
  const analog = ns.addAnalogDataItem({
    componentOf: peer, browseName: "analog", nodeId: "s=peer.analog", dataType: "Double",
    engineeringUnitsRange: { low: 0, high: 200 },
  });
  let n = 0;
  const tick = () => {
    const now = new Date();
    counter.setValueFromSource(new Variant({ dataType: DataType.UInt32, value: n }), StatusCodes.Good, now);
    analog.setValueFromSource(new Variant({ dataType: DataType.Double, value: n % 200 }), StatusCodes.Good, now);
    n++;
  };
  tick();
  const timer = setInterval(tick, 100);

  const benchItems = parseInt(arg("bench-items", "0"), 10);
  let benchTimer = null;
  if (benchItems > 0) {
    const folder = ns.addObject({ organizedBy: addressSpace.rootFolder.objects, browseName: "Bench", nodeId: "s=bench" });
    const vars = [];
    for (let i = 0; i < benchItems; i++) {
      vars.push(ns.addVariable({
        componentOf: folder, browseName: "b" + i, nodeId: "s=bench." + String(i).padStart(5, "0"),
        dataType: "Double", minimumSamplingInterval: 0,
      }));
    }
    let k = 0;
    const change = () => {
      const now = new Date();
      k++;
      for (let i = 0; i < vars.length; i++) {
        vars[i].setValueFromSource(new Variant({ dataType: DataType.Double, value: k + i / 1e6 }), StatusCodes.Good, now);
      }
    };
    change();
    benchTimer = setInterval(change, parseFloat(arg("change-ms", "103.125")));
  }

  await server.start();
  process.stdout.write("ready " + port + "\n");

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    if (benchTimer) clearInterval(benchTimer);
    try { await server.shutdown(0); } finally { process.exit(0); }
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdin.on("end", stop);
  process.stdin.resume();
}

main().catch((err) => {
  process.stderr.write("server failed: " + (err && err.stack || err) + "\n");
  process.exit(1);
});
