-- particle-web.lua: a board's web server (the WebServer examples of seed
-- 001): a static page, several pages, and dynamic content, as a table of
-- routes for http.serve.
--
--   wirecat simulate scripts/particle-web.lua --listen 127.0.0.1:8080
--   curl http://127.0.0.1:8080/ ; curl http://127.0.0.1:8080/status
local addr = args.listen or "127.0.0.1:8080"
local started = now()
local hits = 0
local temp = 21.5
local html = { ["content-type"] = "text/html" }

local function page(body)
  return function()
    hits = hits + 1
    return 200, "<html><body>" .. body() .. "</body></html>", html
  end
end

local server, err = http.serve(addr, {
  ["GET /"] = page(function()
    return "<h1>Particle</h1><p>Hello from a board.</p>"
      .. '<a href="/about">about</a> <a href="/status">status</a>'
  end),
  ["GET /about"] = page(function()
    return "<h1>About</h1><p>A web server in a few lines of Lua.</p>"
  end),
  ["GET /status"] = page(function() -- dynamic content: changes on every request
    return string.format("<h1>Status</h1><p>device %d, up %.1f s, %d requests, %.1f C</p>",
      device.id, now() - started, hits, temp)
  end),
  ["*"] = function(req)
    return 404, "<html><body>no page " .. req.path .. "</body></html>", html
  end,
})
if not server then
  error("cannot listen: " .. err)
end
log.info("serving on http://" .. server:addr() .. "/")

-- A sensor keeps changing beside the server.
every(1, function()
  temp = temp + (math.random() - 0.5) * 0.2
end)
