-- end-framer.lua: a framing written in Lua. A message ends with the three
-- bytes END (the BetterTCPStreamHandling example of seed 001): decode buffers
-- until END arrives, encode appends it.
--
--   wirecat listen 127.0.0.1:5000 --frame lua:scripts/end-framer.lua -o lines
--   printf 'one\ntwoENDthreeEND' | wirecat connect 127.0.0.1:5000
--
-- decode(buf) gets every byte received and not yet used. It returns the
-- message and the number of bytes it used, or nil while more are needed.
local find, sub = string.find, string.sub

return {
  decode = function(buf)
    local i, j = find(buf, "END", 1, true) -- plain search: fast
    if not i then
      return nil
    end
    return sub(buf, 1, i - 1), j
  end,
  encode = function(msg)
    return msg .. "END"
  end,
}
