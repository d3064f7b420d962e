// The console's one script: keeps the page live. It listens to the
// server's event stream and, when the ledger changed, fetches the page
// again and swaps in its live part. Without it the page still reads and
// its forms still work; reload for news.
(function () {
  'use strict';
  if (!window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var status = document.getElementById('live-status');
  var busy = false;
  var again = false;

  function say(text, cls) {
    if (status) {
      status.textContent = text;
      status.className = 'status ' + cls;
    }
  }

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch('/', { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) {
        if (r.status !== 200) {
          window.location.reload();
          throw new Error('status ' + r.status);
        }
        return r.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var fresh = doc.getElementById('live');
        var cur = document.getElementById('live');
        if (fresh && cur) {
          cur.replaceWith(document.importNode(fresh, true));
        }
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  var es = new EventSource('/events');
  es.addEventListener('open', function () { say('live', 'on'); });
  es.addEventListener('error', function () { say('reconnecting…', 'off'); });
  es.addEventListener('change', refresh);
  es.addEventListener('logout', function () {
    es.close();
    window.location.reload();
  });
})();
