from rest_framework.response import Response
from rest_framework.views import APIView


class WhoAmI(APIView):
    """The one protected view: who the token says the caller is (DRF's default
    authentication and IsAuthenticated from settings)."""

    def get(self, request):
        token = request.auth
        return Response(
            {
                "user_id": request.user.id,
                "token_type": token["token_type"],
                "jti": token["jti"],
            }
        )
