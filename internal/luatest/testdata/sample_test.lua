Counter = 0
function TestOne() Counter = Counter + 1 end
function TestTwo() assert(Counter == 2) end
TestThree = function() Counter = Counter + 1 end
function helper() error("not a test") end
local function TestLocal() error("local functions are not tests") end
local t = {}
function t.TestField() error("fields are not tests") end
