"""Frames shaped as CoffeeMud's Java I3 router writes them (LPC text of
one frame, without the length prefix), for the tests of what the gateway
copes with. Our MUD is ProbeA, with the player amy; the other MUD is
CoffeeMUD, with the player Bob; the router is *coffee.

* Its error packets carry 0 where the packet they answer belongs, so the
  error can only be matched by who sent it, to whom, and its code.
* It forwards a chan-who request with the channel name emptied, so the
  reply names no channel.
* It writes user names in their own case (AMY for our amy).
* It writes strings without escaping them: a quote in a message ends up
  bare inside the string.
"""

# An unk-user answer to our finger of "zed", without the finger-req.
ERROR_UNK_USER_WITHOUT_PACKET = (
    b'({"error",5,"CoffeeMUD",0,"ProbeA","AMY","unk-user","zed is not online.",0,})')

# An unk-channel answer to our chan-who-req, without it.
ERROR_UNK_CHANNEL_WITHOUT_PACKET = (
    b'({"error",5,"CoffeeMUD",0,"ProbeA","AMY","unk-channel","Unknown channel.",0,})')

# The answer to our chan-who-req for dchat, with the channel emptied.
CHAN_WHO_REPLY_EMPTY_CHANNEL = (
    b'({"chan-who-reply",5,"CoffeeMUD",0,"ProbeA","AMY","",({"Bob","Carol",}),})')

# A channel message whose text holds quotes, written unescaped.
CHANNEL_M_UNESCAPED_QUOTE = (
    b'({"channel-m",5,"CoffeeMUD","bob",0,0,"dchat","Bob","he said "hi" to me",})')

# A tell to AMY (our amy) with a quote at the very end of its text.
TELL_UNESCAPED_QUOTE = (
    b'({"tell",5,"CoffeeMUD","bob","ProbeA","AMY","Bob","say "yes"",})')
