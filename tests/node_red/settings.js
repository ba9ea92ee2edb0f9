// Node-RED settings for tests/node_red: a throwaway user directory and port (given on the command line:
// --userDir, --port), no editor extras, no telemetry, warnings only on the console.
module.exports = {
    uiHost: "127.0.0.1",
    flowFile: "flows.json",
    credentialSecret: false,
    functionExternalModules: false,
    logging: { console: { level: "warn", metrics: false, audit: false } },
    editorTheme: { tours: false, projects: { enabled: false } },
    diagnostics: { enabled: false },
    telemetry: { enabled: false },
};
