// The front door of a local workerd running several Ferry Workers (`ferry
// host workerd`, and the local Cloudflare in tests). It is not deployed to
// Cloudflare, where each Worker has its own hostname.
//
// A request goes to the Worker named by the first label of its Host header
// (<script>.<subdomain>.workers.dev), else to the Worker serving the
// function id or Tangle job id in its path. ROUTES (json) maps script
// names, function ids and job ids to service binding names.

export default {
  async fetch(request, env) {
    const routes = env.ROUTES;
    const url = new URL(request.url);
    const label = (request.headers.get("host") || url.hostname).split(".")[0];
    let target = routes.scripts[label];
    const parts = url.pathname.split("/").filter((p) => p !== "");
    if (!target && parts[0] === "api" && parts[1] === "functions" && parts.length >= 3) {
      target = routes.functions[decodeURIComponent(parts[2])];
    }
    if (!target && parts[0] === "job" && parts.length === 2) target = routes.jobs[parts[1]] || routes.functions[parts[1]];
    if (target) return env[target].fetch(request);
    if (parts.length === 1 && parts[0] === "healthz") {
      return Response.json({ status: "ok", functions: Object.keys(routes.functions).length });
    }
    if (parts.length === 2 && parts[0] === "api" && parts[1] === "functions" && request.method === "GET") {
      const all = await Promise.all(
        Object.values(routes.scripts).map(async (b) => {
          const r = await env[b].fetch(new Request(request.url, request));
          return r.ok ? (await r.json()).functions : [];
        }),
      );
      return Response.json({ functions: all.flat() });
    }
    const what = parts[0] === "job" ? `job ${parts[1]}` : parts.length >= 3 ? `function ${parts[2]}` : `endpoint ${url.pathname}`;
    return Response.json({ error: `no Worker serves ${what}`, code: "NOT_FOUND" }, { status: 404 });
  },
};
