// client.mjs drives an MCP server over stdio with the official TypeScript
// SDK client, the one that Claude Desktop, Claude Code, Cursor, VS Code and
// the MCP Inspector embed, and prints what the client saw as one JSON
// document. The Go tests in cmd/x402-mcp run it against the built binary
// because this client checks what mcp-go's client lets through: after
// tools/list it validates every tool result's structuredContent against the
// tool's outputSchema (Client.callTool) and throws McpError -32602 on a
// mismatch, which a host shows the user as a failed tool call.
//
// Usage: node client.mjs plan.json
//
// The plan:
//
//	{
//	  "command": "/path/to/x402-mcp",
//	  "args": ["serve", "--config", "/path/to/config.toml"],
//	  "env": {"NAME": "value"},            // added to the SDK's default environment
//	  "elicitation": true,                 // declare capabilities.elicitation = {} (form)
//	  "elicit_answers": [{"action": "accept", "content": {"approve": true}},
//	                     {"action": "decline"}, {"action": "cancel"}],
//	  "timeout_ms": 60000,                 // per request; the SDK's default otherwise
//	  "steps": [{"op": "listTools"},
//	            {"op": "call", "name": "x402_quote", "arguments": {"url": "..."}},
//	            {"op": "listResources"},
//	            {"op": "readResource", "uri": "x402://policy"},
//	            {"op": "parallel", "steps": [<step>, <step>, ...]},
//	            {"op": "barrier", "file": "/tmp/x/down"}]
//	}
//
// A barrier step lets the test change the world between two steps (stop a
// database, say) while the session stays open: the client creates
// FILE.reached, then waits (up to two minutes) until FILE.go exists.
//
// Steps run in order, exactly as written, except the steps of a parallel
// step: they are all sent at once over the one session, as a host does
// when an agent calls several tools together, and the parallel step's
// result is the array of their outcomes ({"op", "ok", "result"|"error"}),
// in the order written. Hosts always list tools before
// calling one; a plan that calls first gets no output-schema validation,
// because the SDK only validates tools it has listed.
//
// The output, on stdout:
//
//	{
//	  "server": {"name": ..., "version": ...},
//	  "steps": [{"op": ..., "ok": true, "result": <what the SDK returned>} |
//	            {"op": ..., "ok": false, "error": {"code": ..., "message": ..., "data": ...}}],
//	            each with "max_message_bytes": the longest JSON-RPC line the
//	            server wrote while the step ran, as sent (bytes, without
//	            the newline), so a test can bound what a host must read
//	  "elicitations": [{"message": ..., "requestedSchema": ..., "mode": ..., "answer": ...}],
//	  "error": {...}                       // only when connecting failed
//	}
//
// A thrown error (McpError or otherwise) is recorded, never fatal: the exit
// status is 0 unless the plan cannot be read (2). The server's stderr is
// inherited, so it lands on this script's stderr.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js';

function readPlan(path) {
  if (!path) {
    throw new Error('usage: node client.mjs plan.json');
  }
  const plan = JSON.parse(readFileSync(path, 'utf8'));
  if (typeof plan.command !== 'string' || plan.command === '') {
    throw new Error(`${path}: "command" must be a non-empty string`);
  }
  if (!Array.isArray(plan.steps)) {
    throw new Error(`${path}: "steps" must be an array`);
  }
  return plan;
}

// errorJSON keeps what a host would see of a failure: the JSON-RPC code of
// an McpError (the SDK's own -32602 for an output-schema mismatch, or the
// server's error), and the message.
function errorJSON(err) {
  if (err instanceof McpError) {
    const e = { code: err.code, message: err.message };
    if (err.data !== undefined) {
      e.data = err.data;
    }
    return e;
  }
  return { code: null, message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
}

async function runStep(client, step, requestOptions) {
  switch (step.op) {
    case 'listTools':
      return client.listTools({}, requestOptions);
    case 'call':
      // The SDK's normal path: the default result schema, and the cached
      // output-schema validators that listTools compiled.
      return client.callTool({ name: step.name, arguments: step.arguments ?? {} }, undefined, requestOptions);
    case 'listResources':
      return client.listResources({}, requestOptions);
    case 'readResource':
      return client.readResource({ uri: step.uri }, requestOptions);
    case 'barrier': {
      writeFileSync(`${step.file}.reached`, '');
      for (const deadline = Date.now() + 120000; !existsSync(`${step.file}.go`); ) {
        if (Date.now() > deadline) {
          throw new Error(`barrier ${step.file}: no ${step.file}.go within two minutes`);
        }
        await new Promise(resolve => setTimeout(resolve, 20));
      }
      return {};
    }
    case 'parallel':
      return Promise.all((step.steps ?? []).map(async s => {
        try {
          return { op: s.op, ok: true, result: await runStep(client, s, requestOptions) };
        } catch (err) {
          return { op: s.op, ok: false, error: errorJSON(err) };
        }
      }));
    default:
      throw new Error(`unknown op ${JSON.stringify(step.op)}: want listTools, call, listResources, readResource, parallel or barrier`);
  }
}

// lineMeter measures the lines a server writes on stdout, as bytes on the
// wire, before the SDK parses them.
function lineMeter() {
  const meter = { max: 0, current: 0 };
  meter.watch = stream => {
    // Prepended, so a line is measured before the SDK's listener parses
    // it and resolves the request it answers.
    stream.prependListener('data', chunk => {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf(10, start);
        if (nl < 0) {
          meter.current += chunk.length - start;
          return;
        }
        meter.current += nl - start;
        meter.max = Math.max(meter.max, meter.current);
        meter.current = 0;
        start = nl + 1;
      }
    });
  };
  return meter;
}

async function main() {
  let plan;
  try {
    plan = readPlan(process.argv[2]);
  } catch (err) {
    process.stderr.write(`client.mjs: ${err.message}\n`);
    return 2;
  }

  const out = { steps: [], elicitations: [] };
  const answers = [...(plan.elicit_answers ?? [])];
  const capabilities = plan.elicitation ? { elicitation: {} } : {};
  const client = new Client({ name: 'x402-mcp-tsclient', version: '0.0.0' }, { capabilities });
  if (plan.elicitation) {
    client.setRequestHandler(ElicitRequestSchema, async request => {
      const { message, requestedSchema, mode } = request.params;
      // Out of answers: cancel, as a host does when the user closes the
      // dialog, and say so in the record.
      const answer = answers.shift() ?? { action: 'cancel' };
      out.elicitations.push({ message, requestedSchema, mode, answer });
      return answer;
    });
  }

  const transport = new StdioClientTransport({
    command: plan.command,
    args: plan.args ?? [],
    env: plan.env ?? {},
    stderr: 'inherit',
  });
  const requestOptions = plan.timeout_ms ? { timeout: plan.timeout_ms } : undefined;
  const meter = lineMeter();
  try {
    await client.connect(transport, requestOptions);
    // The transport's child process is not public API; without it the
    // sizes are simply not reported.
    if (transport._process?.stdout) {
      meter.watch(transport._process.stdout);
    }
    out.server = client.getServerVersion();
    out.capabilities = client.getServerCapabilities();
  } catch (err) {
    out.error = errorJSON(err);
  }
  if (!out.error) {
    for (const step of plan.steps) {
      meter.max = 0;
      try {
        const result = await runStep(client, step, requestOptions);
        out.steps.push({ op: step.op, ok: true, result, max_message_bytes: meter.max });
      } catch (err) {
        out.steps.push({ op: step.op, ok: false, error: errorJSON(err), max_message_bytes: meter.max });
      }
    }
  }
  try {
    await client.close();
  } catch (err) {
    process.stderr.write(`client.mjs: closing: ${err.message}\n`);
  }
  await new Promise(resolve => process.stdout.write(JSON.stringify(out) + '\n', resolve));
  return 0;
}

process.exitCode = await main();
