-- particle-web.lua: a board's web server (the WebServer examples of seed
-- 001): a static page, several pages, and dynamic content.
--
--   wirecat simulate scripts/particle-web.lua --listen 127.0.0.1:8080
--   curl http://127.0.0.1:8080/ ; curl http://127.0.0.1:8080/status
local addr = args.listen or "127.0.0.1:8080"
local started = now()
local hits = 0
local temp = 21.5

local pages = {
  ["/"] = function()
    return "<html><body><h1>Particle</h1><p>Hello from a board.</p>"
      .. '<a href="/about">about</a> <a href="/status">status</a></body></html>'
  end,
  ["/about"] = function()
    return "<html><body><h1>About</h1><p>A web server in a few lines of Lua.</p></body></html>"
  end,
  ["/status"] = function() -- dynamic content: changes on every request
    return string.format(
      "<html><body><h1>Status</h1><p>device %d, up %.1f s, %d requests, %.1f C</p></body></html>",
      device.id, now() - started, hits, temp)
  end,
}

local function respond(conn, code, reason, body)
  conn:send(string.format(
    "HTTP/1.1 %d %s\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
    code, reason, #body, body))
end

-- A sensor keeps changing beside the server.
every(1, function()
  temp = temp + (math.random() - 0.5) * 0.2
end)

local server, err = net.listen(addr, function(conn)
  local head, err = conn:recv_until("\r\n\r\n", 5)
  if not head then
    conn:close()
    return
  end
  hits = hits + 1
  local method, path = head:match("^(%u+) (%S+) HTTP/1%.%d")
  local page = pages[path or ""]
  if method ~= "GET" then
    respond(conn, 405, "Method Not Allowed", "<html><body>only GET</body></html>")
  elseif not page then
    respond(conn, 404, "Not Found", "<html><body>no page " .. tostring(path) .. "</body></html>")
  else
    respond(conn, 200, "OK", page())
  end
  conn:close()
end)
if not server then
  error("cannot listen: " .. err)
end
log.info("serving on http://" .. server:addr() .. "/")
