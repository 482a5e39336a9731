-- led-board.lua: a board whose LED a server controls (the NodeJS2Hardware
-- example of seed 001). The server sends "LED ON" or "LED OFF", one command a
-- line; the board obeys and reports "STATE ON" / "STATE OFF". It reports its
-- state once on connecting, and answers anything else with "ERROR ...".
--
--   wirecat listen 127.0.0.1:5000 --frame line          # in one terminal: type LED ON / LED OFF
--   wirecat simulate scripts/led-board.lua --connect 127.0.0.1:5000   # in another
--
-- The same board on the protocol modules. --arg via=mqtt: it obeys ON or
-- OFF published to boards/ID/led and reports its state on boards/ID/state
-- (retained, with a will saying "offline"). --arg via=http: a web server,
-- GET /led says the state, PUT /led (body ON or OFF) sets it.
--
--   wirecat simulate scripts/led-board.lua --arg via=mqtt --connect 127.0.0.1:1883 &
--   mosquitto_pub -p 1883 -t boards/1/led -m ON
--   wirecat simulate scripts/led-board.lua --arg via=http --listen 127.0.0.1:8080 &
--   curl -X PUT -d ON http://127.0.0.1:8080/led
local led = "OFF"

-- obey sets the LED from a command ("ON", "off", " LED ON "); nil and
-- why for anything else.
local function obey(cmd)
  local want = (cmd:upper():gsub("^%s*LED%s+", "")):match("^%s*(%u+)%s*$")
  if want ~= "ON" and want ~= "OFF" then
    return nil, "unknown command: " .. cmd
  end
  led = want
  return led
end

if args.via == "mqtt" then
  local base = "boards/" .. device.id
  local client = assert(mqtt.connect(TARGET, {
    client_id = "led-board-" .. device.id,
    will = { topic = base .. "/state", payload = "offline", qos = 1, retain = true },
  }))
  assert(client:publish(base .. "/state", led, { qos = 1, retain = true }))
  assert(client:subscribe(base .. "/led", 1, function(msg)
    local state, err = obey(msg.payload)
    if not state then
      log.warn(err)
      return
    end
    client:publish(base .. "/state", state, { qos = 1, retain = true })
  end))
elseif args.via == "http" then
  local server = assert(http.serve(args.listen or "127.0.0.1:8080", {
    ["GET /led"] = function() return led .. "\n" end,
    ["PUT /led"] = function(req)
      local state, err = obey(req.body)
      if not state then
        return 400, err .. "\n"
      end
      return 200, state .. "\n"
    end,
  }))
  log.info("LED at http://" .. server:addr() .. "/led")
else
  local conn, err = net.connect(TARGET, { frame = "line" })
  if not conn then
    error("cannot reach the server: " .. err)
  end
  conn:send("STATE " .. led)
  while true do
    local cmd, err = conn:recv()
    if not cmd then
      log.info("server closed the connection (" .. err .. ")")
      break
    end
    local want = cmd:match("^%s*LED%s+(%u+)%s*$")
    if want == "ON" or want == "OFF" then
      led = want
      conn:send("STATE " .. led)
    else
      conn:send("ERROR unknown command: " .. cmd)
    end
  end
end
